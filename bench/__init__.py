"""blobstore's benchmark suite: ``python -m bench [--quick]``.

Every figure is printed next to the limit it should be compared with (hash
speed, raw disk, loopback sockets, peers), all measured in the same run on
the same machine, because these machines are noisy and absolute numbers alone
mean little.
"""
