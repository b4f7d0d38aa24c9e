// Wraps an adapter so that it receives passwords through its adapter's
// password transform (password_transform.h).
#include "registry.h"
#include "password_transform.h"
#include "scrub.h"

namespace pwsync::gateway {
namespace {

class TransformingAdapter final : public Adapter {
public:
    TransformingAdapter(std::unique_ptr<Adapter> inner, PasswordTransform transform)
        : inner_(std::move(inner)), transform_(std::move(transform)) {}

    DeliveryResult deliver(const Delivery& d) override {
        auto password = transform_.apply(*d.password);
        if (!password) return {Outcome::permanent, "password transform: " + password.error().message};
        // The old password was once a new one and went through the same
        // rules; when it no longer passes them (rules changed) it is left out.
        std::optional<Secret> old;
        if (d.old_password != nullptr)
            if (auto o = transform_.apply(*d.old_password)) old = std::move(*o);
        Delivery changed = d;
        changed.password = &*password;
        changed.old_password = old ? &*old : nullptr;
        DeliveryResult r = inner_->deliver(changed);
        r.message = scrub_secrets(std::move(r.message), *password, old ? &*old : nullptr);
        return r;
    }

private:
    std::unique_ptr<Adapter> inner_;
    PasswordTransform transform_;
};

}  // namespace

Result<std::unique_ptr<Adapter>> with_password_transform(const AdapterContext& c, std::unique_ptr<Adapter> inner) {
    auto t = PasswordTransform::from_properties(c.config.properties);
    if (!t) return fail(Errc::invalid_argument, "adapter '" + c.config.name + "': " + t.error().message);
    if (t->identity()) return inner;
    return std::make_unique<TransformingAdapter>(std::move(inner), std::move(*t));
}

}  // namespace pwsync::gateway
