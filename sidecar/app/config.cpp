namespace acme_sidecar::app {}
