"""Built-in example graphs, always registered."""
