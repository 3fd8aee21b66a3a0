"""The Arrow Flight and Flight SQL server: a thin translation of both protocols to `lakehouse.lake.Lake`."""
