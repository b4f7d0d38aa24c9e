// The master key file: 32 raw bytes, mode 0600, refused when anyone but its
// owner may read or write it. During a rotation "<key>.new" holds the next key.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "pwsync/handles.h"
#include "impl.h"

namespace pwsync::store {
namespace {

std::string errno_text() { return std::strerror(errno); }

std::string octal_mode(mode_t m) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "%04o", static_cast<unsigned>(m & 07777));
    return buf;
}

}  // namespace

Status check_key_file_mode(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) {
        if (errno == ENOENT) return fail(Errc::not_found, "master key " + path + " does not exist");
        return fail(Errc::io, "cannot read master key " + path + ": " + errno_text());
    }
    if (!S_ISREG(st.st_mode)) return fail(Errc::invalid_argument, "master key " + path + " is not a regular file");
    if ((st.st_mode & 077) != 0)
        return fail(Errc::permission, "master key " + path + " is accessible by group or others (mode " +
                                          octal_mode(st.st_mode) + "); refusing to use it: run chmod 600 " + path);
    return {};
}

Result<Secret> read_key_file(const std::string& path) {
    if (auto st = check_key_file_mode(path); !st) return std::unexpected(st.error());
    UniqueFd f(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!f) return fail(errno == EACCES ? Errc::permission : Errc::io,
                              "cannot open master key " + path + ": " + errno_text());
    Secret bytes;
    bytes.resize(crypto::kKeySize + 1);  // one more, to notice a file too long
    std::size_t got = 0;
    while (got < bytes.size()) {
        const ssize_t n = ::read(f.get(), bytes.data() + got, bytes.size() - got);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail(Errc::io, "cannot read master key " + path + ": " + errno_text());
        if (n == 0) break;
        got += static_cast<std::size_t>(n);
    }
    if (got != crypto::kKeySize)
        return fail(Errc::crypto, "master key " + path + " must hold exactly 32 bytes" +
                                      (got > crypto::kKeySize ? " (it is longer)" : " (it has " + std::to_string(got) + ")"));
    bytes.resize(got);
    return bytes;
}

Status fsync_dir_of(const std::string& path) {
    const auto slash = path.find_last_of('/');
    const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : path.substr(0, slash));
    UniqueFd d(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!d || ::fsync(d.get()) != 0) return fail(Errc::io, "cannot sync folder " + dir + ": " + errno_text());
    return {};
}

Status write_key_file(const std::string& path, const crypto::Key& key) {
    UniqueFd f(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!f) {
        if (errno == EEXIST) return fail(Errc::already_exists, "key file " + path + " already exists; refusing to overwrite it");
        return fail(Errc::io, "cannot create key file " + path + ": " + errno_text());
    }
    // The umask could have narrowed the mode but never widens it; set it anyway.
    if (::fchmod(f.get(), 0600) != 0) return fail(Errc::io, "cannot set the mode of " + path + ": " + errno_text());
    const auto bytes = key.view();
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(f.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            const std::string why = errno_text();
            ::unlink(path.c_str());
            return fail(Errc::io, "cannot write key file " + path + ": " + why);
        }
        done += static_cast<std::size_t>(n);
    }
    if (::fsync(f.get()) != 0) {
        const std::string why = errno_text();
        ::unlink(path.c_str());
        return fail(Errc::io, "cannot sync key file " + path + ": " + why);
    }
    return fsync_dir_of(path);
}

Result<crypto::KeyRing> load_key_ring(const std::string& key_file) {
    crypto::KeyRing ring;
    auto main = read_key_file(key_file);
    if (!main) return std::unexpected(main.error());
    auto k = crypto::Key::from_bytes(main->view());
    if (!k) return std::unexpected(k.error());
    ring.current = k->id();
    ring.keys.push_back(std::move(*k));
    // A rotation that did not finish leaves the next key beside the current one.
    const std::string next = key_file + ".new";
    if (path_exists(next)) {
        auto nb = read_key_file(next);
        if (!nb) return std::unexpected(nb.error());
        auto nk = crypto::Key::from_bytes(nb->view());
        if (!nk) return std::unexpected(nk.error());
        ring.keys.push_back(std::move(*nk));
    }
    return ring;
}

}  // namespace pwsync::store
