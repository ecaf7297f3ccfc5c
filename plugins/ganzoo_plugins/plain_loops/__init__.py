"""The built-in plugins' training steps written as plain PyTorch loops, for ``ganzoo bench``.

Each module states one plugin's method a second time with no engine in between: the same networks,
losses and Adam, in the order the paper trains them. ``ganzoo bench`` times the engine against these
to measure its overhead, and tests check that one engine step and one plain step end with the same
weights. They are registered in the ``ganzoo.plain_loops`` entry-point group (name -> ``make(nets,
config)``), so a third-party plugin can ship its own.
"""
