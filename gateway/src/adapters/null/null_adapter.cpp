// The `null` adapter: accepts every delivery and does nothing. It measures
// the core (engine, store, dispatcher) without an external system, and
// stands in for one in a dry run.
#include "registry.h"

namespace pwsync::gateway {
namespace {

class NullAdapter final : public Adapter {
public:
    DeliveryResult deliver(const Delivery&) override { return {Outcome::done, {}}; }
};

}  // namespace

Result<std::unique_ptr<Adapter>> make_null_adapter(const AdapterContext&) {
    return std::unique_ptr<Adapter>(std::make_unique<NullAdapter>());
}

}  // namespace pwsync::gateway
