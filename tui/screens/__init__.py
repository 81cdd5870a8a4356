"""Detail screens pushed over the main screen: an app's resources/diff/history, a pipeline's runs."""
