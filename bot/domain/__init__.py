"""The ledger's rules: money, time, codes, allocation. No Discord import here, ever."""
