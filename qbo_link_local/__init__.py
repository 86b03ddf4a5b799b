"""The local stack (``qbo-link dev``): the real handlers on one machine against moto and the sandbox."""
