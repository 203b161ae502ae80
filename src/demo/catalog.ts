/** The demo shop's fixed catalog: 48 products in 6 categories, with fixed prices per currency. */

export type Currency = "USD" | "EUR" | "GBP";

export interface Category {
  name: string;
  slug: string;
  /** Relative share of browsing that lands in this category. */
  popularity: number;
}

export interface Product {
  product_id: string;
  sku: string;
  name: string;
  slug: string;
  category: Category;
  /** Relative share of product views. */
  popularity: number;
  prices: Record<Currency, number>;
}

/** Category → [product name, list price in whole US dollars], best sellers first. */
const CATALOG: ReadonlyArray<[name: string, popularity: number, products: Array<[string, number]>]> = [
  [
    "Shoes",
    1.3,
    [
      ["Trail Runner", 89],
      ["City Sneaker", 75],
      ["Leather Chelsea Boot", 149],
      ["Canvas Slip-On", 45],
      ["Waterproof Hiking Boot", 169],
      ["Carbon Racing Flat", 119],
      ["Wool Loafer", 99],
      ["Rain Boot", 59],
    ],
  ],
  [
    "Apparel",
    1.4,
    [
      ["Merino Crew Tee", 49],
      ["Organic Cotton Hoodie", 79],
      ["Rain Shell Jacket", 159],
      ["Slim Chino", 69],
      ["Denim Jacket", 109],
      ["Fleece Pullover", 89],
      ["Linen Shirt", 65],
      ["Puffer Vest", 119],
    ],
  ],
  [
    "Bags",
    0.9,
    [
      ["Everyday Backpack", 95],
      ["Weekender Duffel", 139],
      ["Crossbody Sling", 49],
      ["Laptop Sleeve", 39],
      ["Canvas Tote", 29],
      ["Roll-Top Pack", 119],
      ["Hip Pack", 35],
      ["Travel Organizer", 25],
    ],
  ],
  [
    "Accessories",
    1.0,
    [
      ["Wool Beanie", 29],
      ["Leather Belt", 45],
      ["Polarized Sunglasses", 79],
      ["Merino Socks 3-Pack", 24],
      ["Chunky Knit Scarf", 39],
      ["Leather Wallet", 55],
      ["Six-Panel Cap", 27],
      ["Touchscreen Gloves", 35],
    ],
  ],
  [
    "Home",
    0.7,
    [
      ["Stoneware Mug", 18],
      ["Insulated Bottle", 32],
      ["Wool Throw Blanket", 89],
      ["Cedar Scented Candle", 26],
      ["Linen Napkins 4-Pack", 34],
      ["Pour-Over Coffee Set", 49],
      ["Brass Desk Lamp", 99],
      ["Cotton Towel Set", 59],
    ],
  ],
  [
    "Outdoor",
    0.7,
    [
      ["Camping Hammock", 69],
      ["Rechargeable Headlamp", 39],
      ["Trekking Poles", 89],
      ["Compact Camp Stove", 59],
      ["Down Sleeping Bag", 249],
      ["Ultralight Tent", 329],
      ["Folding Camp Chair", 79],
      ["Water Filter", 45],
    ],
  ],
];

export const CATEGORIES: readonly Category[] = CATALOG.map(([name, popularity]) => ({
  name,
  slug: slugify(name),
  popularity,
}));

export const PRODUCTS: readonly Product[] = CATALOG.flatMap(([, , products], categoryIndex) =>
  products.map(([name, dollars], index) => {
    const category = CATEGORIES[categoryIndex] as Category;
    const number = String(categoryIndex * 100 + index + 1).padStart(3, "0");
    return {
      product_id: `prod_${1000 + categoryIndex * 100 + index + 1}`,
      sku: `${category.name.slice(0, 3).toUpperCase()}-${number}`,
      name,
      slug: slugify(name),
      category,
      popularity: category.popularity / (1 + index * 0.35),
      prices: localPrices(dollars),
    };
  }),
);

export function productsIn(category: Category): Product[] {
  return PRODUCTS.filter((product) => product.category === category);
}

/** Shop-style local prices (ending in .99) at a realistic level for each currency. */
function localPrices(dollars: number): Record<Currency, number> {
  const charm = (amount: number) => Math.round(amount) - 0.01;
  return { USD: charm(dollars), EUR: charm(dollars * 0.95), GBP: charm(dollars * 0.8) };
}

function slugify(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "");
}
