// The workflow graph canvas: Cytoscape.js (vendored under vendor/cytoscape), laid out with dagre, with
// cytoscape-edgehandles for drag-to-connect. Python owns the model: this component draws `graph`
// ({nodes, edges}) and `statuses`, and reports what the user did (select, move, connect, drop, delete);
// Python updates the definition and sends the new graph back.
import cytoscape from "cytoscape";
import cytoscapeDagre from "cytoscape-dagre";
import edgehandles from "cytoscape-edgehandles";

let registered = false;
function register() {
  if (registered) return;
  cytoscape.use(cytoscapeDagre);
  cytoscape.use(edgehandles);
  registered = true;
}

const STATUS = {
  running: ["#dbeafe", "#2563eb"],
  retrying: ["#fef3c7", "#d97706"],
  succeeded: ["#bbf7d0", "#16a34a"],
  failed: ["#fecaca", "#dc2626"],
  caught: ["#fed7aa", "#ea580c"],
  paused: ["#e9d5ff", "#9333ea"],
  cancelled: ["#e5e7eb", "#6b7280"],
  timeout: ["#fecaca", "#b91c1c"],
};

const TYPE_COLOURS = {
  task: "#2563eb",
  choice: "#d97706",
  wait: "#0891b2",
  parallel: "#7c3aed",
  map: "#7c3aed",
  pass: "#64748b",
  succeed: "#16a34a",
  fail: "#dc2626",
  unknown: "#94a3b8",
};

function stylesheet() {
  const styles = [
    {
      selector: "node",
      style: {
        shape: "round-rectangle",
        width: 170,
        height: 52,
        "background-color": "#ffffff",
        "border-width": 2,
        "border-color": "#94a3b8",
        label: "data(label)",
        "text-wrap": "wrap",
        "text-max-width": 160,
        "text-valign": "center",
        "text-halign": "center",
        "font-size": 12,
        color: "#0f172a",
      },
    },
    ...Object.entries(TYPE_COLOURS).map(([type, colour]) => ({
      selector: `node[type = "${type}"]`,
      style: { "border-color": colour },
    })),
    { selector: "node[?start]", style: { "border-width": 4 } },
    { selector: "node[?end]", style: { "border-style": "double", "border-width": 5 } },
    { selector: "node[?breakpoint]", style: { "underlay-color": "#dc2626", "underlay-opacity": 0.25, "underlay-padding": 6 } },
    ...Object.entries(STATUS).map(([status, [fill, border]]) => ({
      selector: `node[status = "${status}"]`,
      style: { "background-color": fill, "border-color": border },
    })),
    {
      selector: "node:selected",
      style: { "overlay-color": "#2563eb", "overlay-opacity": 0.12, "overlay-padding": 6 },
    },
    {
      selector: "edge",
      style: {
        width: 2,
        "curve-style": "bezier",
        "target-arrow-shape": "triangle",
        "line-color": "#94a3b8",
        "target-arrow-color": "#94a3b8",
        label: "data(label)",
        "font-size": 10,
        color: "#475569",
        "text-background-color": "#ffffff",
        "text-background-opacity": 0.85,
        "text-background-padding": 2,
      },
    },
    { selector: 'edge[kind = "default"]', style: { "line-style": "dashed" } },
    {
      selector: 'edge[kind = "catch"]',
      style: { "line-style": "dashed", "line-color": "#f87171", "target-arrow-color": "#f87171" },
    },
    {
      selector: "edge:selected",
      style: { "line-color": "#2563eb", "target-arrow-color": "#2563eb", width: 3 },
    },
    {
      selector: ".eh-preview, .eh-ghost-edge",
      style: { "line-color": "#2563eb", "target-arrow-color": "#2563eb", "line-style": "dashed" },
    },
    { selector: ".eh-ghost-edge.eh-preview-active", style: { opacity: 0 } },
    { selector: ".eh-ghost-node", style: { width: 1, height: 1, opacity: 0, label: "" } },
  ];
  return styles;
}

export default {
  template: `
    <div class="nimbus-dag" tabindex="0" @keydown="onKey" @dragover.prevent @drop.prevent="onDrop"
         style="position: relative; outline: none; min-height: 200px;">
      <div ref="cy" style="position: absolute; inset: 0;"></div>
      <div ref="handle" class="nimbus-dag-handle" title="Drag to another state to connect"
           @mousedown.prevent.stop="startConnect" @mouseenter="keepHandle" @mouseleave="dropHandleSoon"
           style="display: none; position: absolute; width: 16px; height: 16px; border-radius: 8px;
                  background: #2563eb; border: 2px solid #ffffff; box-shadow: 0 0 0 1px #2563eb;
                  cursor: crosshair; z-index: 5;"></div>
    </div>`,
  props: {
    graph: Object,
    statuses: Object,
    selected: String,
    editable: Boolean,
    draw_mode: Boolean,
  },
  mounted() {
    register();
    this.cy = cytoscape({
      container: this.$refs.cy,
      style: stylesheet(),
      elements: [],
      minZoom: 0.2,
      maxZoom: 2.5,
      boxSelectionEnabled: false,
      autoungrabify: !this.editable,
    });
    this.$el.cy = this.cy; // for tests and debugging: document.querySelector('.nimbus-dag').cy
    this.handleNode = null;
    this.known = new Set();
    this.handleTimer = null;
    this.cy.on("tap", "node", (e) => this.$emit("select", { kind: "node", id: e.target.id() }));
    this.cy.on("tap", "edge", (e) => {
      if (e.target.hasClass("eh-ghost-edge") || e.target.hasClass("eh-preview")) return;
      this.$emit("select", { kind: "edge", id: e.target.id() });
    });
    this.cy.on("tap", (e) => {
      if (e.target === this.cy) {
        this.hideHandle();
        this.$emit("select", { kind: "none", id: "" });
      }
    });
    this.cy.on("dragfree", "node", () => this.$emit("moved", { positions: this.positions() }));
    this.cy.on("mouseover", "node", (e) => this.showHandle(e.target));
    this.cy.on("mouseout", "node", () => this.dropHandleSoon());
    this.cy.on("grab pan zoom", () => this.hideHandle());
    this.eh = this.cy.edgehandles({
      canConnect: (source, target) =>
        this.editable && !source.same(target) && !["succeed", "fail"].includes(source.data("type")),
      edgeParams: () => ({ data: { kind: "new" } }),
      snap: true,
      snapThreshold: 30,
      hoverDelay: 100,
    });
    this.cy.on("ehcomplete", (event, source, target, added) => {
      added.remove();
      this.$emit("connect", { source: source.id(), target: target.id() });
    });
    this.fitted = false;
    this.resizeObserver = new ResizeObserver(() => {
      if (!this.cy) return;
      this.cy.resize();
      if (!this.fitted) this.fit();
    });
    this.resizeObserver.observe(this.$el);
    this.sync(true);
    this.applyDrawMode();
  },
  beforeUnmount() {
    if (this.resizeObserver) this.resizeObserver.disconnect();
    this.hideHandle();
    if (this.eh) this.eh.destroy();
    if (this.cy) this.cy.destroy();
    this.cy = null;
  },
  watch: {
    graph: { handler() { this.sync(false); }, deep: true },
    statuses: { handler() { this.applyStatuses(); }, deep: true },
    selected() { this.applySelection(); },
    editable() { this.cy.autoungrabify(!this.editable); this.applyDrawMode(); },
    draw_mode() { this.applyDrawMode(); },
  },
  methods: {
    sync(first) {
      const cy = this.cy;
      if (!cy) return;
      const graph = this.graph || { nodes: [], edges: [] };
      const wanted = new Set([...graph.nodes.map((n) => "n:" + n.id), ...graph.edges.map((e) => "e:" + e.id)]);
      const missing = [];
      const added = [];
      cy.batch(() => {
        cy.elements().forEach((el) => {
          const key = (el.isNode() ? "n:" : "e:") + el.id();
          if (!wanted.has(key) && !el.hasClass("eh-ghost") && !el.hasClass("eh-preview")) el.remove();
        });
        for (const node of graph.nodes) {
          const data = { id: node.id, label: node.label, type: node.type, start: !!node.start,
                         end: !!node.end, breakpoint: !!node.breakpoint };
          let el = cy.getElementById(node.id);
          const placed = typeof node.x === "number" && typeof node.y === "number";
          if (el.empty()) {
            el = cy.add({ group: "nodes", data, position: placed ? { x: node.x, y: node.y } : { x: 0, y: 0 } });
          } else {
            el.data(data);
            if (placed) {
              const p = el.position();
              if (Math.abs(p.x - node.x) > 0.5 || Math.abs(p.y - node.y) > 0.5) el.position({ x: node.x, y: node.y });
            }
          }
          if (!placed) missing.push(el);
          if (!this.known.has(node.id)) added.push(el);
        }
        // edges are keyed by position in the definition: rebuild them so source/target always match
        cy.edges().filter((e) => !e.hasClass("eh-ghost-edge") && !e.hasClass("eh-preview")).remove();
        for (const edge of graph.edges) {
          cy.add({ group: "edges", data: { id: edge.id, source: edge.source, target: edge.target,
                                            kind: edge.kind, label: edge.label || "" } });
        }
      });
      if (missing.length) {
        if (missing.length === cy.nodes().length) this.runLayout(false);
        else this.placeNear(missing);
        // the editor keeps where these states were put, so they do not move on the next change
        if (this.editable) this.$emit("laid_out", { positions: this.positions() });
      }
      this.applyStatuses();
      this.applySelection();
      this.known = new Set(graph.nodes.map((n) => n.id));
      // fit when the view would hide something new: a state dropped where the user looks stays put
      const hidden = added.some((n) => {
        const b = n.renderedBoundingBox();
        return b.x1 < 0 || b.y1 < 0 || b.x2 > cy.width() || b.y2 > cy.height();
      });
      if (first || hidden || missing.length === cy.nodes().length) this.fit();
    },
    placeNear(nodes) {
      // states without a saved position (e.g. added in the JSON tab): below their predecessor
      for (const node of nodes) {
        const from = node.incomers("node").filter((n) => !nodes.includes(n));
        const others = this.cy.nodes().filter((n) => !nodes.includes(n));
        const base = from.nonempty() ? from.first().position()
          : { x: others.nonempty() ? others.boundingBox().x1 + 85 : 0,
              y: others.nonempty() ? others.boundingBox().y2 : 0 };
        let pos = { x: base.x, y: base.y + 110 };
        while (this.cy.nodes().some((n) => n !== node && Math.abs(n.position().x - pos.x) < 120
                                         && Math.abs(n.position().y - pos.y) < 60)) {
          pos = { x: pos.x + 200, y: pos.y };
        }
        node.position(pos);
      }
    },
    runLayout(emit) {
      const layout = this.cy.layout({ name: "dagre", rankDir: "TB", nodeSep: 40, rankSep: 60,
                                      edgeSep: 10, animate: false, fit: true, padding: 40 });
      layout.run();
      if (emit) this.$emit("moved", { positions: this.positions() });
    },
    auto_layout() {
      this.runLayout(true);
    },
    fit() {
      const cy = this.cy;
      if (!cy) return;
      if (cy.width() === 0 || cy.height() === 0) {
        this.fitted = false; // hidden (e.g. another tab is shown): fit when it is shown again
        return;
      }
      cy.fit(undefined, 40);
      if (cy.zoom() > 1.2) { cy.zoom(1.2); cy.center(); }
      this.fitted = cy.nodes().nonempty();
    },
    positions() {
      const out = {};
      this.cy.nodes().forEach((n) => {
        if (n.hasClass("eh-ghost-node") || n.hasClass("eh-ghost")) return;
        const p = n.position();
        out[n.id()] = [Math.round(p.x), Math.round(p.y)];
      });
      return out;
    },
    rendered_positions() {
      // node centres in page pixels relative to the canvas element (used by browser tests)
      const out = {};
      this.cy.nodes().forEach((n) => {
        const p = n.renderedPosition();
        out[n.id()] = [p.x, p.y];
      });
      return out;
    },
    applyStatuses() {
      const statuses = this.statuses || {};
      this.cy.batch(() => {
        this.cy.nodes().forEach((n) => {
          const s = statuses[n.id()];
          if (s) n.data("status", s);
          else n.removeData("status");
        });
      });
    },
    applySelection() {
      this.cy.batch(() => {
        this.cy.elements(":selected").unselect();
        if (this.selected) this.cy.getElementById(this.selected).select();
      });
    },
    applyDrawMode() {
      if (!this.eh) return;
      if (this.editable && this.draw_mode) this.eh.enableDrawMode();
      else this.eh.disableDrawMode();
      if (this.editable) this.eh.enable();
      else this.eh.disable();
    },
    showHandle(node) {
      if (!this.editable || ["succeed", "fail"].includes(node.data("type"))) return;
      clearTimeout(this.handleTimer);
      this.handleNode = node;
      const p = node.renderedPosition();
      const h = node.renderedOuterHeight();
      const handle = this.$refs.handle;
      handle.style.left = `${p.x - 8}px`;
      handle.style.top = `${p.y + h / 2 - 8}px`;
      handle.style.display = "block";
    },
    keepHandle() {
      clearTimeout(this.handleTimer);
    },
    dropHandleSoon() {
      clearTimeout(this.handleTimer);
      this.handleTimer = setTimeout(() => this.hideHandle(), 400);
    },
    hideHandle() {
      clearTimeout(this.handleTimer);
      if (this.$refs.handle) this.$refs.handle.style.display = "none";
    },
    startConnect() {
      if (!this.handleNode || !this.editable) return;
      const node = this.handleNode;
      this.hideHandle();
      this.eh.start(node);
      // the press began on the handle, outside Cytoscape's canvas, so Cytoscape sees no tapend: finish
      // the gesture on the next mouseup ourselves (stop() completes it when a target is previewed)
      window.addEventListener("mouseup", () => this.eh && this.eh.stop(), { once: true });
    },
    onKey(e) {
      if (!this.editable) return;
      const tag = (e.target && e.target.tagName) || "";
      if (tag === "INPUT" || tag === "TEXTAREA") return;
      if (e.key === "Delete" || e.key === "Backspace") {
        const chosen = this.cy.elements(":selected");
        if (chosen.nonempty()) {
          e.preventDefault();
          this.$emit("delete", { kind: chosen.first().isNode() ? "node" : "edge", id: chosen.first().id() });
        }
      }
    },
    onDrop(e) {
      if (!this.editable) return;
      const kind = e.dataTransfer && e.dataTransfer.getData("application/x-nimbus-state");
      if (!kind) return;
      const rect = this.$refs.cy.getBoundingClientRect();
      const pan = this.cy.pan();
      const zoom = this.cy.zoom();
      const x = (e.clientX - rect.left - pan.x) / zoom;
      const y = (e.clientY - rect.top - pan.y) / zoom;
      this.$emit("drop", { type: kind, x: Math.round(x), y: Math.round(y) });
    },
  },
};
