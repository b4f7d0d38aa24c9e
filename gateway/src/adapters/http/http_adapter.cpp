// The `http` adapter: a webhook. POSTs a JSON body with the accounts and the
// password to an HTTPS URL, verifying the server against `ca` (or the system
// CAs), authenticated by a bearer token and/or a client certificate, signed
// with HMAC-SHA256 over "TIMESTAMP.BODY" so the receiver can refuse forgeries
// and replays. 2xx = done; 429, 5xx and network errors = retry (honouring
// Retry-After); any other answer = permanent.
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstring>
#include <mutex>
#include <optional>

#include "registry.h"

namespace pwsync::gateway {
namespace {

struct CurlFree {
    void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};

// Headers carry the token: their copies are wiped before they are freed.
struct HeaderList {
    curl_slist* list = nullptr;
    HeaderList() = default;
    HeaderList(const HeaderList&) = delete;
    HeaderList& operator=(const HeaderList&) = delete;
    ~HeaderList() {
        for (curl_slist* h = list; h != nullptr; h = h->next) OPENSSL_cleanse(h->data, std::strlen(h->data));
        curl_slist_free_all(list);
    }
    bool add(std::string_view line) {
        Secret z(line);
        z.push_back('\0');
        curl_slist* next = curl_slist_append(list, z.data());
        if (next == nullptr) return false;
        list = next;
        return true;
    }
};

// JSON string escaping straight into a wiped buffer.
void append_json_string(Secret& out, std::string_view s) {
    static const char hex[] = "0123456789abcdef";
    out.push_back('"');
    for (const char ch : s) {
        const auto c = static_cast<unsigned char>(ch);
        if (c == '"' || c == '\\') {
            out.push_back('\\');
            out.push_back(ch);
        } else if (c < 0x20) {
            out.append("\\u00");
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        } else {
            out.push_back(ch);
        }
    }
    out.push_back('"');
}

std::size_t collect_reply(char* data, std::size_t size, std::size_t n, void* user) {
    auto* out = static_cast<std::string*>(user);
    const std::size_t bytes = size * n;
    if (out->size() < 512) out->append(data, std::min(bytes, 512 - out->size()));
    return bytes;
}

class HttpAdapter final : public Adapter {
public:
    struct Settings {
        std::string name, url, ca, cert, key;
        std::optional<Secret> token, hmac_secret;
        long timeout = 30;
    };
    explicit HttpAdapter(Settings s) : s_(std::move(s)) {}

    DeliveryResult deliver(const Delivery& d) override {
        Secret body = make_body(d);
        const std::string timestamp = std::to_string(
            std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count());
        HeaderList headers;
        bool ok = headers.add("Content-Type: application/json") && headers.add("X-Pwsync-Timestamp: " + timestamp);
        if (s_.hmac_secret) ok = ok && headers.add("X-Pwsync-Signature: sha256=" + sign(timestamp, body));
        if (s_.token) {
            Secret line("Authorization: Bearer ");
            line.append(s_.token->view());
            ok = ok && headers.add(line.view());
        }
        if (!ok) return {Outcome::retry, "out of memory building the request"};
        auto result = post(body, headers.list, time_allowed(d, std::chrono::seconds(s_.timeout)));
        body.clear();
        return result;
    }

private:
    Secret make_body(const Delivery& d) const {
        Secret b("{\"application\":");
        append_json_string(b, d.app);
        b.append(",\"windows\":");
        append_json_string(b, d.windows);
        b.append(",\"external\":");
        append_json_string(b, d.external);
        b.append(",\"origin\":");
        append_json_string(b, d.origin);
        b.append(",\"change_id\":" + std::to_string(d.change_id) + ",\"time\":\"" + format_iso8601(d.changed) + "\"");
        b.append(",\"password\":");
        append_json_string(b, d.password->view());
        if (d.old_password != nullptr) {
            b.append(",\"old_password\":");
            append_json_string(b, d.old_password->view());
        }
        b.push_back('}');
        return b;
    }

    std::string sign(const std::string& timestamp, const Secret& body) const {
        Secret message(timestamp);
        message.push_back('.');
        message.append(body.view());
        unsigned char mac[EVP_MAX_MD_SIZE];
        unsigned int len = 0;
        HMAC(EVP_sha256(), s_.hmac_secret->data(), static_cast<int>(s_.hmac_secret->size()),
             reinterpret_cast<const unsigned char*>(message.data()), message.size(), mac, &len);
        return hex_encode(std::string_view(reinterpret_cast<const char*>(mac), len));
    }

    DeliveryResult post(const Secret& body, curl_slist* headers, std::chrono::milliseconds allowed) const {
        std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
        if (!curl) return {Outcome::retry, "curl_easy_init failed"};
        CURL* c = curl.get();
        char error[CURL_ERROR_SIZE] = {};
        std::string reply;
        curl_easy_setopt(c, CURLOPT_URL, s_.url.c_str());
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https");
        curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);  // a redirect would carry the password elsewhere
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
        if (!s_.ca.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, s_.ca.c_str());
        if (!s_.cert.empty()) {
            curl_easy_setopt(c, CURLOPT_SSLCERT, s_.cert.c_str());
            curl_easy_setopt(c, CURLOPT_SSLKEY, s_.key.c_str());
        }
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, s_.timeout);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(allowed.count()));
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        // Our buffer, not a copy (no COPYPOSTFIELDS): the caller wipes it.
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_reply);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &reply);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
        const CURLcode rc = curl_easy_perform(c);
        if (rc != CURLE_OK) {
            const std::string what = s_.url + ": " + (error[0] != '\0' ? std::string(error) : curl_easy_strerror(rc));
            const bool config = rc == CURLE_URL_MALFORMAT || rc == CURLE_UNSUPPORTED_PROTOCOL ||
                                rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CACERT_BADFILE;
            return {config ? Outcome::permanent : Outcome::retry, what};
        }
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        curl_off_t retry_after = -1;
        curl_easy_getinfo(c, CURLINFO_RETRY_AFTER, &retry_after);
        std::string first = reply.substr(0, reply.find('\n'));
        if (first.size() > 200) first.resize(200);
        const std::string msg = "HTTP " + std::to_string(status) + (first.empty() ? "" : ": " + first);
        if (status >= 200 && status < 300) return {Outcome::done, msg};
        if (status == 429 || status >= 500) {
            DeliveryResult r{Outcome::retry, msg};
            if (retry_after > 0) r.retry_after = std::chrono::seconds(std::min<curl_off_t>(retry_after, 86400));
            return r;
        }
        return {Outcome::permanent, msg};
    }

    Settings s_;
};

}  // namespace

Result<std::unique_ptr<Adapter>> make_http_adapter(const AdapterContext& c) {
    static std::once_flag once;
    static CURLcode global = CURLE_OK;
    std::call_once(once, [] { global = curl_global_init(CURL_GLOBAL_DEFAULT); });
    const std::string name = "http adapter '" + c.config.name + "'";
    if (global != CURLE_OK) return fail(Errc::io, name + ": libcurl did not initialise");
    PWSYNC_TRY(http_adapter_type().validate(c.config));
    const auto& p = c.config.properties;
    auto get = [&](const char* k) { auto it = p.find(k); return it == p.end() ? std::string() : it->second; };
    HttpAdapter::Settings s;
    s.name = c.config.name;
    s.url = get("url");
    if (!s.url.starts_with("https://")) return fail(Errc::invalid_argument, name + " needs property url = https://...");
    s.ca = get("ca");
    s.cert = get("cert");
    s.key = get("key");
    if (s.cert.empty() != s.key.empty()) return fail(Errc::invalid_argument, name + ": cert and key go together");
    s.timeout = static_cast<long>(std::max<std::uint32_t>(1, c.config.timeout));
    auto has = [&](const char* k) {
        return std::find(c.config.secret_properties.begin(), c.config.secret_properties.end(), k) != c.config.secret_properties.end();
    };
    if (has("token")) { PWSYNC_ASSIGN(s.token, c.secret("token")); }
    if (has("hmac-secret")) { PWSYNC_ASSIGN(s.hmac_secret, c.secret("hmac-secret")); }
    return std::make_unique<HttpAdapter>(std::move(s));
}

}  // namespace pwsync::gateway
