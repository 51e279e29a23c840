"""Test equipment for the soak run, the fault matrix and the whole-agent benchmarks.

A network namespace for cross-process CAN (``netns``), a private mosquitto (``broker``), an
agent process in a namespace (``agent``), the radar sender standing in for the radar ECU
(``radar_sender``), a traffic generator standing in for the rest of the bus (``traffic``),
the soak run (``soak``) and the benchmarks that need this equipment (``fastpath_bench``,
``drain_bench``). It ships with the simulator: a vehicle install leaves both out.
"""
