import sys

from fer.logs import quiet_tensorflow, verbose_requested

quiet_tensorflow(verbose_requested())  # before anything imports TensorFlow

from fer.cli import main  # noqa: E402

sys.exit(main())
