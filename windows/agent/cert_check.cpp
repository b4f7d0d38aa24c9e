#include "cert_check.h"

#include "winutil.h"

namespace pwsync::win {

std::expected<PCCERT_CONTEXT, std::string> load_pem_certificate(const std::wstring& pem_file) {
    auto pem = read_file(pem_file);
    if (!pem) return std::unexpected(pem.error());
    const std::string text(pem->begin(), pem->end());
    const auto begin = text.find("-----BEGIN CERTIFICATE-----");
    const auto end = text.find("-----END CERTIFICATE-----", begin == std::string::npos ? 0 : begin);
    if (begin == std::string::npos || end == std::string::npos)
        return std::unexpected(narrow(pem_file) + ": no PEM certificate in it");
    const std::string block = text.substr(begin, end + 25 - begin);
    DWORD n = 0;
    if (!CryptStringToBinaryA(block.c_str(), static_cast<DWORD>(block.size()), CRYPT_STRING_BASE64HEADER, nullptr, &n,
                              nullptr, nullptr))
        return std::unexpected(narrow(pem_file) + ": bad PEM: " + last_error_text(GetLastError()));
    Bytes der(n);
    if (!CryptStringToBinaryA(block.c_str(), static_cast<DWORD>(block.size()), CRYPT_STRING_BASE64HEADER, der.data(), &n,
                              nullptr, nullptr))
        return std::unexpected(narrow(pem_file) + ": bad PEM: " + last_error_text(GetLastError()));
    PCCERT_CONTEXT c = CertCreateCertificateContext(X509_ASN_ENCODING | PKCS_7_ASN_ENCODING, der.data(), n);
    if (c == nullptr) return std::unexpected(narrow(pem_file) + ": not a certificate: " + last_error_text(GetLastError()));
    return c;
}

std::expected<PinnedCa, std::string> PinnedCa::load(const std::wstring& pem_file) {
    auto c = load_pem_certificate(pem_file);
    if (!c) return std::unexpected(c.error());
    return PinnedCa(*c);
}

PinnedCa::~PinnedCa() {
    if (ca_ != nullptr) CertFreeCertificateContext(ca_);
}

std::string PinnedCa::check(PCCERT_CONTEXT server) const {
    if (server == nullptr) return "the gateway sent no certificate";
    if (!CertCompareCertificateName(X509_ASN_ENCODING, &server->pCertInfo->Issuer, &ca_->pCertInfo->Subject))
        return "the gateway's certificate is not issued by the configured CA (issuer differs)";
    if (!CryptVerifyCertificateSignatureEx(0, X509_ASN_ENCODING, CRYPT_VERIFY_CERT_SIGN_SUBJECT_CERT,
                                           const_cast<CERT_CONTEXT*>(server), CRYPT_VERIFY_CERT_SIGN_ISSUER_CERT,
                                           const_cast<CERT_CONTEXT*>(ca_), 0, nullptr))
        return "the gateway's certificate is not signed by the configured CA";
    if (CertVerifyTimeValidity(nullptr, server->pCertInfo) != 0) return "the gateway's certificate is expired or not yet valid";
    return {};
}

}  // namespace pwsync::win
