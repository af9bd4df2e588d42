"""What every layer uses: errors, crash-safe files, paths, the commands' CLI, ports, imports."""
