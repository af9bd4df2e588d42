"""What every layer uses: errors, crash-safe files, arrays, paths, the commands' CLI, imports."""
