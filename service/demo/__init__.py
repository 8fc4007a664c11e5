"""Built-in demo data shipped with the package (read it with importlib.resources).

`h200_timeline.jsonl`: the US allowing NVIDIA H200 sales to China (December 2025) and, through
June 2026, no chip ordered, from public reporting. One event per line, in append order.
"""
