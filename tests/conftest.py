pytest_plugins = ["tests.components.fixtures"]
