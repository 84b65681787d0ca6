"""The app's views; each renders model facts it is handed and never parses archives itself."""
