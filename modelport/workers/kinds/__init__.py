"""Built-in worker kinds, one module each; imported lazily by the kind registry."""
