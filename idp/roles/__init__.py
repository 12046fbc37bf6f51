"""Who may do what, and why the record says so: disbursement units, role assignments from the
head of unit's written orders, separation of duties, and the IdP's administrative roles."""
