pytest_plugins = ["mqtt_fixtures"]
