/**
 * Drives the real login and consent HTML forms over HTTP, the way a browser without
 * JavaScript would: follows redirects by hand, keeps cookies, submits the forms.
 */
export class CookieJar {
  private readonly cookies = new Map<string, { value: string; path: string }>();

  store(response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';');
      const eq = pair.indexOf('=');
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const path = attrs.map((a) => a.trim()).find((a) => a.toLowerCase().startsWith('path='))?.slice(5) ?? '/';
      const expired = attrs.some((a) => /^expires=thu, 01 jan 1970/i.test(a.trim())) || value === '';
      if (expired) this.cookies.delete(`${name}|${path}`);
      else this.cookies.set(`${name}|${path}`, { value, path });
    }
  }

  header(url: string): string {
    const { pathname } = new URL(url);
    return [...this.cookies.entries()]
      .filter(([, c]) => pathname.startsWith(c.path))
      .map(([key, c]) => `${key.split('|')[0]}=${c.value}`)
      .join('; ');
  }
}

export interface FormPage {
  url: string;
  status: number;
  html: string;
}

export async function request(jar: CookieJar, url: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  const cookie = jar.header(url);
  if (cookie) headers.set('cookie', cookie);
  const response = await fetch(url, { ...init, headers, redirect: 'manual' });
  jar.store(response);
  return response;
}

/** Follows redirects until a page on the server answers, or until a URL outside `origin` is reached. */
export async function follow(jar: CookieJar, url: string, origin: string, init?: RequestInit): Promise<{ final: string; page?: FormPage }> {
  let current = url;
  let response = await request(jar, current, init);
  for (let hops = 0; hops < 10 && response.status >= 300 && response.status < 400; hops++) {
    current = new URL(response.headers.get('location')!, current).toString();
    if (!current.startsWith(origin) || current.startsWith(`${origin}/demo/callback`)) return { final: current };
    response = await request(jar, current);
  }
  return { final: current, page: { url: current, status: response.status, html: await response.text() } };
}

export function formFields(html: string, action: string): { action: string; fields: Record<string, string> } | null {
  const forms = [...html.matchAll(/<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)];
  const form = forms.find((f) => decode(f[1]).endsWith(action));
  if (!form) return null;
  const fields: Record<string, string> = {};
  for (const input of form[2].matchAll(/<input([^>]*)>/g)) {
    const name = /name="([^"]*)"/.exec(input[1])?.[1];
    const value = /value="([^"]*)"/.exec(input[1])?.[1] ?? '';
    if (name) fields[name] = decode(value);
  }
  return { action: decode(form[1]), fields };
}

export const decode = (s: string): string => s.replace(/&#(\d+);/g, (_m, n: string) => String.fromCharCode(Number(n))).replace(/&amp;/g, '&');

export async function submit(jar: CookieJar, page: FormPage, action: string, values: Record<string, string>, origin: string) {
  const form = formFields(page.html, action);
  if (!form) throw new Error(`no form ${action} on ${page.url}: ${page.html.slice(0, 400)}`);
  const body = new URLSearchParams({ ...form.fields, ...values });
  return follow(jar, new URL(form.action, page.url).toString(), origin, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body,
  });
}

/**
 * Full browser-less sign-in: authorize URL → login form → consent form → the redirect
 * URI with ?code=… (returned as `final`).
 */
export async function signInThroughForms(authorizationUrl: string, origin: string, credentials: { email: string; password: string }): Promise<string> {
  const jar = new CookieJar();
  let step = await follow(jar, authorizationUrl, origin);
  for (let i = 0; i < 4 && step.page; i++) {
    const { html } = step.page;
    if (html.includes('/login"')) step = await submit(jar, step.page, '/login', credentials, origin);
    else if (html.includes('/confirm"')) step = await submit(jar, step.page, '/confirm', {}, origin);
    else throw new Error(`unexpected page ${step.page.url} (${step.page.status}): ${html.slice(0, 500)}`);
  }
  if (step.page) throw new Error(`sign-in did not finish: ${step.page.url}`);
  return step.final;
}
