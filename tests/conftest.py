pytest_plugins = ["mqtt_fixtures", "pg_fixtures"]
