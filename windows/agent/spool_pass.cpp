#include "spool_pass.h"

#include <algorithm>
#include <vector>

#include "log.h"
#include "retry.h"
#include "winutil.h"

namespace pwsync::win {
namespace {

std::vector<std::wstring> entries() {
    std::vector<std::wstring> names;
    WIN32_FIND_DATAW fd;
    HANDLE h = FindFirstFileW((spool_dir() + L"\\*.pws").c_str(), &fd);
    if (h == INVALID_HANDLE_VALUE) return names;
    do {
        if (!(fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) && is_entry_name(narrow(fd.cFileName)))
            names.emplace_back(fd.cFileName);
    } while (FindNextFileW(h, &fd));
    FindClose(h);
    std::sort(names.begin(), names.end());
    return names;
}

void set_aside(const std::wstring& name, const wchar_t* folder, const std::string& why) {
    const std::wstring dir = spool_dir() + L"\\" + folder;
    CreateDirectoryW(dir.c_str(), nullptr);
    const std::wstring from = spool_dir() + L"\\" + name, to = dir + L"\\" + name;
    if (MoveFileExW(from.c_str(), to.c_str(), MOVEFILE_REPLACE_EXISTING | MOVEFILE_WRITE_THROUGH))
        log(Level::error, "spool entry " + narrow(name) + " set aside in spool\\" + narrow(folder) + ": " + why);
    else
        log(Level::error, "spool entry " + narrow(name) + " (" + why + ") could not be moved to spool\\" + narrow(folder) +
                              ": " + last_error_text(GetLastError()));
}

}  // namespace

PassResult spool_pass(GatewayClient& client, Sealer& sealer, const AgentConfig& cfg) {
    PassResult r;
    const auto names = entries();
    for (std::size_t i = 0; i < names.size(); ++i) {
        const std::wstring& name = names[i];
        const std::string label = narrow(name);
        if (r.unreachable) {
            ++r.left;
            continue;
        }
        auto file = read_file(spool_dir() + L"\\" + name);
        if (!file) {
            log(Level::warning, "spool entry " + label + ": " + file.error());
            ++r.left;
            continue;
        }
        auto rec = decode_record(file->data(), file->size());
        if (!rec) {
            set_aside(name, L"bad", rec.error());
            ++r.set_aside;
            continue;
        }
        auto plain = sealer.unseal(rec->sealed);
        if (!plain) {
            set_aside(name, L"bad", plain.error());
            ++r.set_aside;
            continue;
        }
        auto change = decode_change(*plain);
        plain->clear();
        if (!change) {
            set_aside(name, L"bad", change.error());
            ++r.set_aside;
            continue;
        }
        SecretBytes account8, password8;
        if (!utf16le_to_utf8(change->account.data(), change->account.size(), account8) ||
            !utf16le_to_utf8(change->password.data(), change->password.size(), password8)) {
            set_aside(name, L"bad", "not valid UTF-16");
            ++r.set_aside;
            continue;
        }
        const std::string account(account8.bytes().begin(), account8.bytes().end());
        if (too_old(rec->created, unix_now(), cfg.max_age)) {
            set_aside(name, L"expired", "the change of " + account + " is older than max-age (" +
                                            std::to_string(cfg.max_age) + " s) and was not sent");
            ++r.set_aside;
            continue;
        }
        const SendResult s = client.send(account, password8);
        password8.clear();
        switch (s.outcome) {
            case Outcome::stored:
                if (!DeleteFileW((spool_dir() + L"\\" + name).c_str()))
                    log(Level::error, "sent " + account + " but could not delete spool entry " + label + ": " +
                                          last_error_text(GetLastError()) + " (it will be sent again)");
                log(Level::info, "password change of " + account + " " + s.detail);
                ++r.sent;
                break;
            case Outcome::refused:
                set_aside(name, L"refused", "the change of " + account + ": " + s.detail);
                ++r.set_aside;
                break;
            case Outcome::unreachable:
                log(Level::warning, "password change of " + account + " kept in the spool: " + s.detail);
                r.unreachable = true;
                ++r.left;
                break;
        }
    }
    return r;
}

}  // namespace pwsync::win
