"""The token cache: one refresh policy (:mod:`.policy`) over interchangeable stores (:mod:`.stores`:
the contract and memory; :mod:`.file`; :mod:`.redis`)."""
