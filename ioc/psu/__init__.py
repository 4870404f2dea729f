"""E3631A power-supply support: transport, driver, port thread, device support, simulator."""
