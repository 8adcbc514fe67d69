"""The worker's task that ships the operation log to storage every ``GREENBAR_OPLOG_SHIP_SECONDS``."""

from webapp import oplog
from webapp import worker


@worker.every("OPLOG_SHIP_SECONDS")
def ship_operation_log():
    """Ship what is unshipped, a batch at a time, until nothing is left."""
    while oplog.ship() == oplog.SHIP_BATCH:
        pass
