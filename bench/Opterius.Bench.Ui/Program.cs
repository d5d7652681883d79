using System.Diagnostics;
using System.Net.Http.Headers;
using Microsoft.Playwright;

// The accounts grid as an admin uses it, in Debian's Chromium: the time from typing a search to its rows on screen, and
// from clicking the next page to its rows, next to the same list request through the API in the same run.
//   Opterius.Bench.Ui BASE_URL ADMIN PASSWORD TOKEN [TRIES=50]
if (args.Length < 4) { Console.Error.WriteLine("usage: Opterius.Bench.Ui BASE_URL ADMIN PASSWORD TOKEN [TRIES]"); return 2; }
var (baseUrl, admin, password, token) = (args[0].TrimEnd('/'), args[1], args[2], args[3]);
var tries = args.Length > 4 ? int.Parse(args[4]) : 50;
var profile = Directory.CreateTempSubdirectory("opterius-bench-chromium-").FullName;

using var playwright = await Playwright.CreateAsync();
await using var browser = await playwright.Chromium.LaunchPersistentContextAsync(profile, new BrowserTypeLaunchPersistentContextOptions
{
    ExecutablePath = "/usr/bin/chromium", Headless = true, IgnoreHTTPSErrors = true,
    ViewportSize = new ViewportSize { Width = 1366, Height = 800 },
    Args = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"],
});
var page = await browser.NewPageAsync();
page.SetDefaultTimeout(30_000);
await page.GotoAsync(baseUrl + "/");
await page.FillAsync("input[name=username]", admin);
await page.FillAsync("input[name=password]", password);
await page.ClickAsync("button[type=submit]");
await page.Locator("[data-testid=accounts-grid][data-interactive=true]").WaitForAsync();
var search = page.GetByPlaceholder("Search username, domain or email");
// The first row's username (its link): the row's first cell is the bulk-selection checkbox.
var firstRow = "document.querySelector('[data-testid=accounts-grid] tbody tr [data-testid=account-link]')?.textContent?.trim()";

// Rows are user000001 … : a search for a prefix shows that prefix's first account first (the grid sorts by username).
async Task<double> TimeAsync(Func<Task> act, string expected)
{
    var clock = Stopwatch.StartNew();
    await act();
    await page.WaitForFunctionAsync($"e => {firstRow} === e", expected, new() { PollingInterval = 5 });
    return clock.Elapsed.TotalMilliseconds;
}

var random = new Random(42);
var typing = new List<double>();
for (var i = 0; i < tries + 3; i++)
{
    var n = random.Next(1, 9000);
    var prefix = $"user{n:D5}"; // matches user{n}0 … user{n}9
    var took = await TimeAsync(() => search.FillAsync(prefix), $"user{n:D5}0");
    if (i >= 3) typing.Add(took); // the first three warm the circuit and the query plans
}

await search.FillAsync("");
await page.WaitForFunctionAsync($"() => {firstRow} === 'user000001'");
var next = page.Locator(".mud-table-pagination-actions button").Nth(2); // first, previous, next, last
var paging = new List<double>();
for (var p = 2; p <= tries + 4; p++)
{
    var took = await TimeAsync(() => next.ClickAsync(), $"user{(p - 1) * 25 + 1:D6}");
    if (p > 4) paging.Add(took);
}

using var http = new HttpClient(new HttpClientHandler { ServerCertificateCustomValidationCallback = (_, _, _, _) => true });
http.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
var apiSearch = new List<double>();
var apiPage = new List<double>();
for (var i = 0; i < tries + 3; i++)
{
    var n = random.Next(1, 9000);
    var clock = Stopwatch.StartNew();
    (await http.GetAsync($"{baseUrl}/api/v1/accounts?per_page=25&search=user{n:D5}")).EnsureSuccessStatusCode();
    if (i >= 3) apiSearch.Add(clock.Elapsed.TotalMilliseconds);
    clock.Restart();
    (await http.GetAsync($"{baseUrl}/api/v1/accounts?per_page=25&page={i + 2}")).EnsureSuccessStatusCode();
    if (i >= 3) apiPage.Add(clock.Elapsed.TotalMilliseconds);
}

static string Row(string what, List<double> ms)
{
    ms.Sort();
    double At(double q) => ms[(int)Math.Ceiling(q * ms.Count) - 1];
    return $"| {what} | {ms.Count} | {At(0.5):0} | {At(0.95):0} |";
}
Console.WriteLine("| what | tries | p50 (ms) | p95 (ms) |");
Console.WriteLine("|---|---|---|---|");
Console.WriteLine(Row("browser: type a search → its rows shown (includes the field's 300 ms debounce)", typing));
Console.WriteLine(Row("browser: click next page → its rows shown", paging));
Console.WriteLine(Row("API: `GET /api/v1/accounts?per_page=25&search=…`", apiSearch));
Console.WriteLine(Row("API: `GET /api/v1/accounts?per_page=25&page=N`", apiPage));
await browser.CloseAsync();
Directory.Delete(profile, recursive: true);
return 0;
