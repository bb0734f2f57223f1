"""Pure torch modules and losses (no data, optimizer or device code)."""
