"""The development harness: benchmarks, chaos scenarios, the local process stack, the fake provider and the
local protocol servers, audience seeding. Installed by local runs (NOTIFY_DEVELOPMENT) only; production code
never imports it, and the production image leaves it out."""
