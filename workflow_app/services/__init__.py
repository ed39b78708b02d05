"""Use cases. Each public function owns its transaction, calls the engine and the models, and
knows nothing of requests: the web pages, the JSON API and the CLI all call the same functions."""
