"""Reusable NiceGUI pieces shared by the console's pages."""
