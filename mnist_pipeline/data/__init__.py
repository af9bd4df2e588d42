"""MNIST's data: its sources (the fetch stage), the arrays' checks, the network's input format."""
