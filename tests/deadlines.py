"""How long a test waits for what should simply happen (a message arriving, an ack, a process
answering): generous, because the suite must pass on a loaded 2-core machine, where a broker
round trip that takes milliseconds on an idle one can take seconds. A test that passes waits
only as long as the thing takes; the deadline is paid only by a test that is failing anyway.
"""

SHOULD_HAPPEN_S = 60.0
