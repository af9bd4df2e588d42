"""Training: the fit, its optimizer and speed devices, the pinned kernels, the LiteRT export."""
