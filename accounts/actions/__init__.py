"""Every write to accounts goes through these modules (check_*() validates, do_*() mutates)."""
