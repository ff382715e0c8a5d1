"""Flow inputs (#21): packet captures, nfdump files and exports, NetFlow/IPFIX, read into the normalized flow
table (:data:`floodwitness.schema.FLOW_COLUMNS`).

* :mod:`.registry` chooses the reader by content (``sniff(path) -> FlowKind``; ``READERS``);
* readers: :mod:`.capture` (pcap/pcapng: nfstream + tcpdump's packet counts and fragment rows), :mod:`.nfdump`
  (nfcapd files via the nfdump program, CSV and JSON exports; :mod:`.csvfast` for plain CSV), :mod:`.netflow`
  (captures of NetFlow v5/v9/IPFIX export datagrams);
* :func:`.run.ingest_flows` writes ``STORE/flows/part-<file_id>-<n>.parquet`` and ``Manifest.flow_inputs``;
  :func:`floodwitness.ingest.store.flow_paths` (or ``Store.flow_parts``) lists the parts for the analysis.
"""
