"""The admin and helpdesk REST API (``/api/admin/v1/``) and its OpenAPI document: a thin HTTP
layer over the domain packages, for consoles of other systems and for scripts."""
