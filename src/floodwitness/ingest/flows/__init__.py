"""Flow inputs (#21): packet captures, nfdump files and exports, NetFlow/IPFIX, read into the normalized flow
table (:data:`floodwitness.schema.FLOW_COLUMNS`)."""
