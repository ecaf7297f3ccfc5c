"""The built-in plugins trained by hand-written PyTorch loops, for ``ganzoo bench`` and the benchmarks.

Each module trains one plugin's networks the way a person writes it without ganzoo (DCGAN the way
pytorch/examples does): its own data indexing from the raw arrays, its own losses and
``torch.optim.Adam``, no EMA, no logging, no progress display. It shares no code with the engine;
it imports only the plugin's network classes (and CycleGAN's image pool) and reads the raw data
files through ganzoo. A module offers:

- ``raw_data(s)``: the raw arrays it trains on (the built-in digits, or digit-styles);
- ``updater(nets, s)``: one iteration on a given real batch (tests compare it with one engine step);
- ``make(nets, s, data)``: one iteration per call, on its own shuffled batches of ``data``;
- ``networks(s)`` (where a whole run can be timed): the plugin's networks, built and initialised;

where ``s`` holds the settings as attributes (the model config's fields plus ``batch_size``,
``size``, ``channels``, ``seed``, ``g_lr``, ``d_lr``, ``hflip``). Modules are registered in the
``ganzoo.plain_loops`` entry-point group, so a third-party plugin can ship its own.
``python -m ganzoo_plugins.plain_loops PLUGIN --settings JSON --steps N`` trains one as a process.
"""
