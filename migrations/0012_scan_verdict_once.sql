-- One verdict per classifier per scan, even when two server processes record the same scan result.
CREATE UNIQUE INDEX verdicts_scan_once ON verdicts (source, classifier) WHERE is_local AND source LIKE 'scanner:decision-%';
