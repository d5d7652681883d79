using Microsoft.Extensions.Options;
using Opterius.Services.Accounts;

namespace Opterius.Services.Resources;

/// <summary>Every production path of DESIGN section 2, placed under the configured root.</summary>
public sealed class ServerLayout(IOptions<OpteriusOptions> options)
{
    public string Root { get; } = Path.GetFullPath(options.Value.Root);

    /// <summary>Maps an absolute production path ("/etc/nginx/...") under the root.</summary>
    public string Under(string productionPath) => Path.Join(Root, productionPath.TrimStart('/'));

    public string HomeParent => Under("/home");
    public string Home(AccountIdentity a) => Path.Join(HomeParent, a.Username);
    public string Crontab(AccountIdentity a) => Under($"/var/spool/cron/crontabs/{a.Username}");
    public string DovecotUsers => Under("/etc/dovecot/users");
    public string PostfixVmailbox => Under("/etc/postfix/vmailbox");
    public string MailDomainsParent => Under("/var/mail/vdomains");
    public string Mailboxes(AccountIdentity a) => Path.Join(MailDomainsParent, a.Domain);
    public string FpmPool(AccountIdentity a) => Under($"/etc/php/{a.PhpVersion}/fpm/pool.d/{a.Domain}.conf");
    public string NginxAvailable(AccountIdentity a) => Under($"/etc/nginx/sites-available/{a.Domain}.conf");
    public string NginxEnabled(AccountIdentity a) => Under($"/etc/nginx/sites-enabled/{a.Domain}.conf");
    public string CertLive(AccountIdentity a) => Under($"/etc/letsencrypt/live/{a.Domain}");
    public string CertArchive(AccountIdentity a) => Under($"/etc/letsencrypt/archive/{a.Domain}");
    public string CertRenewal(AccountIdentity a) => Under($"/etc/letsencrypt/renewal/{a.Domain}.conf");
    public string Passwd => Under("/etc/passwd");
    public string Group => Under("/etc/group");
}
