"""The in-process event bus delivers what is published to matching subscribers."""

from engine.bus import LocalBus
from engine.events import DlqChanged, FunctionChanged


async def test_subscriber_receives_only_its_event_types() -> None:
    bus = LocalBus()
    with bus.subscribe(FunctionChanged) as sub:
        bus.publish(DlqChanged(message_id="m", function_id="f", status="pending"))
        bus.publish(FunctionChanged(function_id="f", function_name="hello", action="created"))
        event = await sub.get(timeout=1)
    assert isinstance(event, FunctionChanged) and event.function_name == "hello"
    assert bus.subscriber_count == 0


async def test_slow_subscriber_drops_oldest_and_counts() -> None:
    bus = LocalBus()
    sub = bus.subscribe(maxsize=2)
    for i in range(5):
        bus.publish(DlqChanged(message_id=str(i), function_id="f", status="pending"))
    first = await sub.get(timeout=1)
    assert isinstance(first, DlqChanged) and first.message_id == "3"
    assert sub.dropped == 3
