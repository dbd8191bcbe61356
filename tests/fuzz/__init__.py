"""Fuzzing of the served API (marker `integration`, run by `make test`), on one server per session.

- test_rest_schema: schemathesis over the served /openapi.json, every route positively, those with inputs
  negatively, plus stateful sequences along inferred links;
- test_grpc_messages: hypothesis over every gRPC request message, generated from the descriptors;
- test_probe_regressions: the attacker probe of issue 9, case by case.

All are derandomized (the same cases on every run) with a fixed number of cases per route or method, and every
request has a deadline: the suite takes well under 90 s on a 2-core machine. To look harder for new findings,
raise EXAMPLES in the two fuzz modules locally.
"""
