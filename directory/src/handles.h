// RAII owners for libldap's C handles: each freed by its own function.
#pragma once

#include <lber.h>
#include <ldap.h>

#include <memory>

#include "pwsync/handles.h"

namespace pwsync::directory {

struct LdapUnbind {
    void operator()(LDAP* ld) const noexcept { ldap_unbind_ext(ld, nullptr, nullptr); }
};
struct MsgFree {
    void operator()(LDAPMessage* m) const noexcept { ldap_msgfree(m); }
};
struct BervalFree {
    void operator()(berval* b) const noexcept { ber_bvfree(b); }
};
struct ControlFree {
    void operator()(LDAPControl* c) const noexcept { ldap_control_free(c); }
};
struct ControlsFree {
    void operator()(LDAPControl** c) const noexcept { ldap_controls_free(c); }
};
struct MemFree {
    void operator()(char* p) const noexcept { ldap_memfree(p); }
};
struct ValuesFree {
    void operator()(berval** v) const noexcept { ldap_value_free_len(v); }
};
struct StringsFree {
    void operator()(char** v) const noexcept { ber_memvfree(reinterpret_cast<void**>(v)); }
};

using LdapPtr = std::unique_ptr<LDAP, LdapUnbind>;
using MsgPtr = std::unique_ptr<LDAPMessage, MsgFree>;
using BerPtr = BerReading;  // libldap's attribute iterator: its buffer is the message's
using BervalPtr = std::unique_ptr<berval, BervalFree>;
using ControlPtr = std::unique_ptr<LDAPControl, ControlFree>;
using ControlsPtr = std::unique_ptr<LDAPControl*, ControlsFree>;
using MemPtr = std::unique_ptr<char, MemFree>;
using ValuesPtr = std::unique_ptr<berval*, ValuesFree>;
using StringsPtr = std::unique_ptr<char*, StringsFree>;

}  // namespace pwsync::directory
