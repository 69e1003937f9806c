"""One module per studio tab: build_<name>_tab(studio, ui)."""
