import { describe, expect, it } from 'vitest';
import { previewsShareBerthSite } from '../../app/preview-domain.js';

describe('previews on the same site as Berth', () => {
  it('tells a preview domain under Berth’s domain from one of its own', () => {
    expect(previewsShareBerthSite('berth.example.com', 'preview.example.com')).toBe(true);
    expect(previewsShareBerthSite('berth.example.com', 'example.com')).toBe(true);
    expect(previewsShareBerthSite('example.com', 'preview.example.com')).toBe(true);
    expect(previewsShareBerthSite('berth.example.co.uk', 'preview.example.co.uk')).toBe(true);
    expect(previewsShareBerthSite('berth.example.com', 'example-preview.net')).toBe(false);
    expect(previewsShareBerthSite('example.com', 'preview.example.net')).toBe(false);
    expect(previewsShareBerthSite('berth.example.com', 'preview.other.com')).toBe(false);
  });

  it('leaves development setups alone', () => {
    expect(previewsShareBerthSite('localhost', 'localhost')).toBe(false);
    expect(previewsShareBerthSite('127.0.0.1', 'localhost')).toBe(false);
  });
});
