"""PyFlink jobs of the stream env (.venv-flink): they import nothing that only the core env has."""
