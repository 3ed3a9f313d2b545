// A fetch-handler function, as on Cloudflare Workers, Deno or Bun.
interface Env {
  GREETING: string;
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    const name = url.searchParams.get('name') ?? 'world';
    console.log(`greeting ${name}`);
    return new Response(`${env.GREETING}, ${name}!\n`, {
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    });
  },
};
