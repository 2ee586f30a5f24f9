"""The numerical core of babynn: numpy and the standard library only, no I/O, no printing.

Nothing is re-exported here: import from the module that owns a name (`core.train.train`,
`core.schedules.make_schedule`, ...), so that a reader finds every name where it is defined.
"""
