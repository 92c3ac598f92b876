"""Word lists the catalogue generator draws from: product types of WebShop's five categories.

Each type carries its breadcrumb, the scrape query, a pool of attribute phrases (WebShop's
``attributes`` are short lower-case phrases like these) and its customisation option groups.
Option values avoid words that WebShop's colour normaliser would mangle (e.g. "standard"
contains "tan"), so that buying the goal product with the goal options scores exactly 1.0.
"""

from __future__ import annotations

from dataclasses import dataclass

COLORS = ["black", "white", "navy blue", "gray", "red", "pink", "green", "beige", "brown", "purple",
          "light blue", "dark grey", "khaki", "burgundy", "olive", "yellow", "black/white", "blue", "ivory",
          "charcoal", "coral", "teal", "wine", "lavender", "silver", "gold", "rose gold", "mint"]
CLOTHING_SIZES = ["x-small", "small", "medium", "large", "x-large", "xx-large", "3x-large"]
SHOE_SIZES = ["6", "6.5", "7", "7.5", "8", "8.5", "9", "9.5", "10", "10.5", "11", "12"]
PACK_SIZES = ["pack of 1", "pack of 2", "pack of 3", "pack of 4", "pack of 6", "pack of 12"]
VOLUMES = ["1 fl oz", "2 fl oz", "3.4 fl oz", "8 fl oz", "16 fl oz", "32 fl oz"]
WEIGHTS = ["4 ounce", "8 ounce", "12 ounce", "1 pound", "2 pound", "5 pound"]
FLAVORS = ["vanilla", "chocolate", "strawberry", "caramel", "peanut butter", "sea salt", "honey",
           "cinnamon", "mixed berry", "coconut", "original", "maple", "lemon", "hazelnut"]
SCENTS = ["lavender", "unscented", "eucalyptus", "citrus", "fresh linen", "sandalwood", "vanilla", "coconut"]
CAPACITIES = ["32gb", "64gb", "128gb", "256gb", "512gb", "1tb"]
CABLE_LENGTHS = ["3 ft", "6 ft", "10 ft", "15 ft", "25 ft"]
FURNITURE_SIZES = ["twin", "full", "queen", "king", "24 inch", "30 inch", "36 inch", "48 inch"]
FURNITURE_STYLES = ["modern", "rustic", "farmhouse", "industrial", "mid century", "scandinavian"]
MATERIALS = ["cotton", "polyester", "leather", "linen", "velvet", "bamboo", "microfiber"]

BRANDS = ["Aurelia", "Brightway", "Cobaltine", "Dunmore", "Everloom", "Fernhill", "Glenmark", "Halcyon",
          "Ironbark", "Juniper Lane", "Kestrel", "Lumora", "Marlowe", "Northvale", "Oakhurst", "Pinecrest",
          "Quillon", "Riverton", "Sablewood", "Tamsin", "Umbria", "Velora", "Westbrook", "Yarrow", "Zephyra",
          "Ashgrove", "Bellamy", "Caldera", "Driftwood Co", "Emberly", "Foxglove", "Greystone", "Hollis",
          "Indigo Peak", "Jasper & Finch", "Kinsley", "Larkspur", "Meadowlark", "Nimbus", "Orla"]

CATEGORY_ROOTS = {
    "beauty": "Beauty & Personal Care",
    "electronics": "Electronics",
    "fashion": "Clothing, Shoes & Jewelry",
    "food": "Grocery & Gourmet Food",
    "furniture": "Home & Kitchen",
}


@dataclass(frozen=True)
class ProductType:
    category: str  # one of WebShop's five coarse categories
    path: tuple[str, ...]  # breadcrumb below the category root
    noun: str  # what the title calls it, e.g. "Running Shoes"
    query: str  # WebShop's scrape query for the type
    attributes: tuple[str, ...]
    options: tuple[tuple[str, tuple[str, ...]], ...]  # option group name -> value pool
    price: tuple[float, float]
    modifiers: tuple[str, ...] = ()


def _t(category: str, path: str, noun: str, query: str, attributes: str, options: dict[str, list[str]],
       price: tuple[float, float], modifiers: str = "") -> ProductType:
    return ProductType(category, tuple(path.split(" > ")), noun, query, tuple(a.strip() for a in attributes.split(",")),
                       tuple((k, tuple(v)) for k, v in options.items()), price,
                       tuple(m.strip() for m in modifiers.split(",") if m.strip()))


FASHION_ATTRS = ("machine wash, hand wash, long sleeve, short sleeve, relaxed fit, slim fit, button closure, "
                 "elastic waistband, quick drying, moisture wicking, polyester cotton, soft material, high waist, "
                 "classic fit, drawstring closure, stretch fabric")
SHOE_ATTRS = ("rubber sole, non slip, memory foam, arch support, lace up, slip on, breathable mesh, lightweight design, "
              "leather upper, cushioned insole, water resistant, wide width")
BEAUTY_ATTRS = ("long lasting, paraben free, cruelty free, easy apply, sensitive skin, natural ingredients, dry skin, "
                "sulfate free, travel size, fragrance free, oily skin, anti aging, hyaluronic acid, vitamin c, "
                "alcohol free, dermatologist tested")
HAIR_ATTRS = ("hair growth, damaged hair, dry hair, curly hair, sulfate free, paraben free, natural ingredients, "
              "color treated, argan oil, long lasting, easy use, frizz control")
ELEC_ATTRS = ("high speed, noise cancelling, easy install, usb port, fast charging, high definition, long battery life, "
              "wireless bluetooth, plug play, heavy duty, dual band, compact size, hands free, water resistant, "
              "touch control, low latency")
FOOD_ATTRS = ("gluten free, sugar free, low carb, non gmo, keto friendly, individually wrapped, ready eat, "
              "high protein, natural ingredients, low sodium, dairy free, plant based, whole grain, resealable bag, "
              "low calorie, great gift")
FURN_ATTRS = ("easy assemble, solid wood, living room, storage space, mid century, space saving, wood finish, "
              "metal legs, bedroom furniture, easy clean, high density foam, steel frame, non slip, "
              "engineered wood, assembly required, dining room")

_C, _SZ, _SH = {"color": COLORS}, CLOTHING_SIZES, SHOE_SIZES

PRODUCT_TYPES: tuple[ProductType, ...] = (
    # fashion
    _t("fashion", "Men > Clothing > Shirts > T-Shirts", "T-Shirt", "men's t-shirts", FASHION_ATTRS,
       {**_C, "size": _SZ}, (9, 35), "Crew Neck, V-Neck, Graphic, Pocket, Athletic"),
    _t("fashion", "Women > Clothing > Tops, Tees & Blouses > Blouses & Button-Down Shirts", "Blouse", "women's blouses",
       FASHION_ATTRS, {**_C, "size": _SZ}, (15, 45), "Chiffon, Floral, Ruffle, Wrap, Casual"),
    _t("fashion", "Women > Clothing > Dresses > Casual", "Dress", "women's dresses", FASHION_ATTRS,
       {**_C, "size": _SZ}, (20, 70), "Maxi, Midi, Summer, Boho, Bodycon, Sundress"),
    _t("fashion", "Men > Clothing > Pants > Casual", "Chino Pants", "men's pants", FASHION_ATTRS,
       {**_C, "size": ["30w x 30l", "32w x 30l", "32w x 32l", "34w x 32l", "36w x 32l", "38w x 34l"]}, (22, 60),
       "Stretch, Flat Front, Straight Leg, Tapered"),
    _t("fashion", "Women > Clothing > Leggings", "Leggings", "women's leggings", FASHION_ATTRS,
       {**_C, "size": _SZ}, (12, 38), "Yoga, High Rise, Workout, Capri"),
    _t("fashion", "Men > Clothing > Jackets & Coats > Lightweight Jackets", "Jacket", "men's jackets", FASHION_ATTRS,
       {**_C, "size": _SZ}, (35, 120), "Windbreaker, Bomber, Softshell, Quilted, Denim"),
    _t("fashion", "Women > Clothing > Fashion Hoodies & Sweatshirts", "Hoodie", "women's hoodies", FASHION_ATTRS,
       {**_C, "size": _SZ}, (18, 55), "Pullover, Zip Up, Oversized, Fleece, Cropped"),
    _t("fashion", "Men > Shoes > Athletic > Running", "Running Shoes", "men's running shoes", SHOE_ATTRS,
       {**_C, "size": _SH}, (35, 130), "Trail, Road, Cushioned, Lightweight"),
    _t("fashion", "Women > Shoes > Fashion Sneakers", "Sneakers", "women's sneakers", SHOE_ATTRS,
       {**_C, "size": _SH}, (30, 95), "Canvas, Platform, Low Top, Walking"),
    _t("fashion", "Women > Shoes > Sandals > Flat", "Sandals", "women's sandals", SHOE_ATTRS,
       {**_C, "size": _SH}, (20, 60), "Slide, Strappy, Gladiator, Thong, Espadrille"),
    _t("fashion", "Men > Shoes > Boots > Work & Safety", "Work Boots", "men's work boots", SHOE_ATTRS,
       {**_C, "size": _SH}, (60, 180), "Steel Toe, Composite Toe, Waterproof, Chelsea"),
    _t("fashion", "Men > Accessories > Socks", "Socks", "men's socks", FASHION_ATTRS,
       {**_C, "size": ["pack of 3", "pack of 6", "pack of 12"]}, (9, 28), "Crew, Ankle, Compression, Athletic"),
    _t("fashion", "Women > Accessories > Scarves & Wraps > Fashion Scarves", "Scarf", "women's scarves", FASHION_ATTRS,
       {**_C}, (10, 30), "Infinity, Pashmina, Plaid, Knit, Silk"),
    _t("fashion", "Women > Jewelry > Necklaces > Pendants", "Pendant Necklace", "women's necklaces",
       "sterling silver, gift box, hypoallergenic, adjustable chain, gold plated, nickel free, handmade, birthstone",
       {"color": ["silver", "gold", "rose gold"], "size": ["16 inch", "18 inch", "20 inch"]}, (15, 90),
       "Heart, Infinity, Initial, Layered, Charm"),
    _t("fashion", "Men > Watches > Wrist Watches", "Wrist Watch", "men's watches",
       "water resistant, stainless steel, quartz movement, leather band, analog display, date display, gift box",
       {**_C}, (30, 250), "Chronograph, Minimalist, Dress, Sport, Diver"),
    # beauty
    _t("beauty", "Skin Care > Face > Moisturizers > Creams", "Face Moisturizer", "face moisturizer", BEAUTY_ATTRS,
       {"size": VOLUMES[:4]}, (9, 60), "Daily, Night, Hydrating, Oil Free, Gel"),
    _t("beauty", "Skin Care > Face > Treatments & Masks > Serums", "Face Serum", "face serum", BEAUTY_ATTRS,
       {"size": VOLUMES[:3]}, (12, 55), "Brightening, Retinol, Niacinamide, Firming"),
    _t("beauty", "Skin Care > Body > Cleansers > Body Washes", "Body Wash", "body wash", BEAUTY_ATTRS,
       {"scent": SCENTS, "size": VOLUMES[3:]}, (6, 25), "Moisturizing, Exfoliating, Foaming, Shower Gel"),
    _t("beauty", "Hair Care > Shampoo & Conditioner > Shampoos", "Shampoo", "shampoo", HAIR_ATTRS,
       {"size": VOLUMES[3:]}, (7, 35), "Volumizing, Clarifying, Moisture, Repair, Tea Tree"),
    _t("beauty", "Hair Care > Styling Products > Hair Oils", "Hair Oil", "hair oil", HAIR_ATTRS,
       {"size": VOLUMES[:4]}, (8, 30), "Rosemary, Castor, Argan, Jojoba"),
    _t("beauty", "Makeup > Lips > Lipstick", "Lipstick", "lipstick", BEAUTY_ATTRS,
       {"color": ["red", "pink", "coral", "nude", "plum", "rose", "mauve", "berry", "wine"]}, (6, 28),
       "Matte, Liquid, Satin, Velvet, Glossy"),
    _t("beauty", "Makeup > Eyes > Mascara", "Mascara", "mascara", BEAUTY_ATTRS,
       {"color": ["black", "brown", "dark grey"]}, (6, 25), "Volumizing, Lengthening, Waterproof, Curling"),
    _t("beauty", "Makeup > Face > Foundation", "Foundation", "foundation makeup", BEAUTY_ATTRS,
       {"color": ["ivory", "beige", "sand", "honey", "caramel", "espresso", "natural"]}, (10, 45),
       "Liquid, Full Coverage, Matte, Dewy, Mineral"),
    _t("beauty", "Foot, Hand & Nail Care > Nail Art & Polish > Nail Polish", "Nail Polish", "nail polish",
       BEAUTY_ATTRS, {"color": ["red", "pink", "coral", "nude", "navy blue", "teal", "lavender", "black"]}, (4, 18),
       "Gel, Quick Dry, Glitter, Chip Resistant"),
    _t("beauty", "Tools & Accessories > Makeup Brushes & Tools > Brush Sets", "Makeup Brush Set",
       "makeup brushes", "synthetic bristles, travel case, easy clean, cruelty free, soft bristles, gift set, "
       "wooden handle, high quality", {"color": ["black", "pink", "rose gold", "white"]}, (8, 40),
       "Professional, Kabuki, Travel, Eye"),
    _t("beauty", "Personal Care > Shaving & Hair Removal > Men > Razors", "Razor", "men's razor",
       "stainless steel, close shave, sensitive skin, easy clean, long lasting, travel size, ergonomic handle",
       {"size": PACK_SIZES[:4]}, (8, 60), "Safety, Electric, Cartridge, Straight"),
    _t("beauty", "Fragrance > Women's > Eau de Parfum", "Perfume", "women's perfume",
       "long lasting, travel size, gift set, floral scent, fresh scent, natural ingredients, alcohol free",
       {"size": VOLUMES[:3]}, (20, 120), "Floral, Musk, Citrus, Amber, Oriental"),
    _t("beauty", "Skin Care > Sun > Body Sunscreens", "Sunscreen", "sunscreen", BEAUTY_ATTRS,
       {"size": VOLUMES[1:5]}, (8, 30), "Mineral, Sport, SPF 50, Reef Safe, Tinted"),
    # electronics
    _t("electronics", "Headphones, Earbuds & Accessories > Headphones > Over-Ear", "Headphones", "headphones",
       ELEC_ATTRS, {**_C}, (20, 250), "Over Ear, Studio, Gaming, Foldable, Bass"),
    _t("electronics", "Headphones, Earbuds & Accessories > Earbuds", "Earbuds", "wireless earbuds", ELEC_ATTRS,
       {**_C}, (15, 150), "True Wireless, Sport, In Ear, Mini"),
    _t("electronics", "Portable Audio & Video > Portable Speakers & Docks > Portable Bluetooth Speakers",
       "Bluetooth Speaker", "bluetooth speaker", ELEC_ATTRS, {**_C}, (20, 160), "Portable, Waterproof, Outdoor, Party"),
    _t("electronics", "Computers & Accessories > Cables & Accessories > Cables > USB Cables", "USB C Cable",
       "usb c cable", ELEC_ATTRS, {"color": ["black", "white", "gray", "red"], "size": CABLE_LENGTHS}, (6, 25),
       "Braided, Fast Charge, Right Angle, Data Sync"),
    _t("electronics", "Cell Phones & Accessories > Chargers & Power Adapters > Wall Chargers", "Wall Charger",
       "phone charger", ELEC_ATTRS, {"color": ["black", "white"], "size": ["20w", "30w", "45w", "65w", "100w"]},
       (10, 50), "GaN, Dual Port, Foldable, Travel"),
    _t("electronics", "Computers & Accessories > Data Storage > External Hard Drives", "Portable SSD",
       "portable ssd", ELEC_ATTRS, {"size": CAPACITIES[2:]}, (45, 250), "Rugged, Slim, NVMe, Thunderbolt"),
    _t("electronics", "Computers & Accessories > Memory Cards > Micro SD Cards", "Micro SD Card", "micro sd card",
       ELEC_ATTRS, {"size": CAPACITIES}, (7, 80), "Extreme, Ultra, Endurance, Gaming"),
    _t("electronics", "Computers & Accessories > Keyboards, Mice & Accessories > Mice", "Wireless Mouse",
       "wireless mouse", ELEC_ATTRS, {**_C}, (10, 70), "Ergonomic, Silent, Vertical, Gaming, Travel"),
    _t("electronics", "Computers & Accessories > Keyboards, Mice & Accessories > Keyboards", "Keyboard",
       "keyboard", ELEC_ATTRS, {"color": ["black", "white", "gray", "pink"]}, (20, 140),
       "Mechanical, Wireless, Backlit, Compact, Ergonomic"),
    _t("electronics", "Camera & Photo > Video Surveillance > Surveillance Cameras", "Security Camera",
       "security camera", ELEC_ATTRS, {"size": PACK_SIZES[:3]}, (25, 160), "Outdoor, Indoor, Doorbell, Pan Tilt"),
    _t("electronics", "Television & Video > Projectors", "Projector", "projector", ELEC_ATTRS, {}, (70, 450),
       "Mini, Portable, 4K, Outdoor Movie"),
    _t("electronics", "Computers & Accessories > Tablet Accessories > Cases", "Tablet Case", "tablet case",
       "shockproof, kickstand, pencil holder, auto sleep wake, slim design, soft tpu, heavy duty, easy install",
       {**_C}, (9, 40), "Folio, Rugged, Keyboard, Kids"),
    _t("electronics", "Car & Vehicle Electronics > Car Electronics > Car Video > Dash Cams", "Dash Cam", "dash cam",
       ELEC_ATTRS, {"size": CAPACITIES[:3]}, (30, 180), "Front and Rear, Mini, Night Vision, 4K"),
    _t("electronics", "Wearable Technology > Smartwatches", "Smart Watch", "smart watch", ELEC_ATTRS, {**_C},
       (30, 300), "Fitness, Sport, Heart Rate, Kids"),
    # food
    _t("food", "Snacks > Cookies", "Cookies", "cookies", FOOD_ATTRS,
       {"flavor": FLAVORS, "size": PACK_SIZES}, (4, 30), "Chewy, Crunchy, Soft Baked, Shortbread, Oatmeal"),
    _t("food", "Snacks > Nuts & Seeds > Almonds", "Almonds", "almonds", FOOD_ATTRS,
       {"flavor": ["sea salt", "honey", "smoked", "unsalted", "cinnamon", "original"], "size": WEIGHTS},
       (6, 35), "Roasted, Raw, Blanched, Sliced"),
    _t("food", "Snacks > Jerky & Dried Meats > Beef", "Beef Jerky", "beef jerky", FOOD_ATTRS,
       {"flavor": ["original", "teriyaki", "peppered", "sweet & spicy", "honey"], "size": WEIGHTS[:4]}, (7, 40),
       "Grass Fed, Thick Cut, Tender, Smoked"),
    _t("food", "Beverages > Coffee, Tea & Cocoa > Coffee > Ground Coffee", "Ground Coffee", "ground coffee",
       FOOD_ATTRS, {"flavor": ["original", "hazelnut", "vanilla", "caramel", "french roast"], "size": WEIGHTS},
       (7, 40), "Medium Roast, Dark Roast, Light Roast, Espresso"),
    _t("food", "Beverages > Coffee, Tea & Cocoa > Tea > Green", "Green Tea", "green tea", FOOD_ATTRS,
       {"flavor": ["original", "jasmine", "mint", "lemon", "honey", "ginger"], "size": PACK_SIZES}, (5, 30),
       "Matcha, Sencha, Loose Leaf, Tea Bags"),
    _t("food", "Breakfast Foods > Cereals > Granola", "Granola", "granola", FOOD_ATTRS,
       {"flavor": ["honey", "cinnamon", "mixed berry", "chocolate", "coconut", "maple"], "size": WEIGHTS[:4]},
       (5, 25), "Clusters, Crunchy, Protein, Ancient Grain"),
    _t("food", "Snacks > Protein Bars", "Protein Bars", "protein bars", FOOD_ATTRS,
       {"flavor": ["chocolate", "peanut butter", "vanilla", "cookie dough", "caramel", "mixed berry"],
        "size": PACK_SIZES[2:]}, (10, 45), "Keto, Whey, Vegan, Chewy"),
    _t("food", "Candy & Chocolate > Chocolate > Chocolate Bars", "Chocolate Bar", "chocolate bars", FOOD_ATTRS,
       {"flavor": ["dark chocolate", "milk chocolate", "sea salt", "almond", "mint", "orange"], "size": PACK_SIZES},
       (3, 30), "Dark, Milk, Artisan, Organic"),
    _t("food", "Pantry Staples > Cooking & Baking > Sweeteners > Honey", "Honey", "raw honey", FOOD_ATTRS,
       {"size": WEIGHTS[:5]}, (6, 35), "Raw, Manuka, Wildflower, Clover"),
    _t("food", "Pantry Staples > Pasta & Noodles", "Pasta", "pasta", FOOD_ATTRS,
       {"size": ["1 pound", "2 pound", "pack of 4", "pack of 6"]}, (3, 25), "Penne, Spaghetti, Fusilli, Rigatoni"),
    _t("food", "Pantry Staples > Herbs, Spices & Seasonings > Mixed Spices & Seasonings", "Seasoning Blend",
       "seasoning", FOOD_ATTRS, {"flavor": ["garlic herb", "smoky", "lemon pepper", "cajun", "italian"],
                                 "size": WEIGHTS[:3]}, (4, 18), "All Purpose, BBQ Rub, Taco, Salt Free"),
    _t("food", "Snacks > Crackers", "Crackers", "crackers", FOOD_ATTRS,
       {"flavor": ["original", "sea salt", "cheddar", "rosemary", "everything"], "size": PACK_SIZES}, (3, 22),
       "Whole Wheat, Rice, Seed, Thin"),
    # furniture
    _t("furniture", "Furniture > Living Room Furniture > Sofas & Couches", "Sofa", "sofa", FURN_ATTRS,
       {**_C}, (200, 950), "Loveseat, Sectional, Futon, Sleeper, Tufted"),
    _t("furniture", "Furniture > Living Room Furniture > Tables > Coffee Tables", "Coffee Table", "coffee table",
       FURN_ATTRS, {"color": ["walnut", "black", "white", "brown", "gray", "natural"]}, (50, 300),
       "Lift Top, Round, Glass, Nesting"),
    _t("furniture", "Furniture > Home Office Furniture > Desks", "Computer Desk", "computer desk", FURN_ATTRS,
       {"color": ["black", "white", "brown", "walnut", "oak"], "size": ["40 inch", "47 inch", "55 inch", "63 inch"]},
       (60, 350), "Writing, L Shaped, Standing, Corner"),
    _t("furniture", "Furniture > Home Office Furniture > Home Office Chairs > Desk Chairs", "Office Chair",
       "office chair", FURN_ATTRS, {**_C}, (60, 400), "Ergonomic, Mesh, Executive, Swivel"),
    _t("furniture", "Furniture > Bedroom Furniture > Beds, Frames & Bases > Bed Frames", "Bed Frame", "bed frame",
       FURN_ATTRS, {"size": ["twin", "full", "queen", "king"]}, (90, 600), "Platform, Upholstered, Canopy, Metal"),
    _t("furniture", "Furniture > Bedroom Furniture > Nightstands", "Nightstand", "nightstand", FURN_ATTRS,
       {"color": ["black", "white", "brown", "walnut", "gray"]}, (40, 200), "Two Drawer, Floating, Rattan, Modern"),
    _t("furniture", "Furniture > Living Room Furniture > Bookcases", "Bookshelf", "bookshelf", FURN_ATTRS,
       {"color": ["black", "white", "brown", "walnut"], "size": ["3 tier", "4 tier", "5 tier"]}, (40, 250),
       "Ladder, Industrial, Cube, Corner"),
    _t("furniture", "Furniture > Kitchen & Dining Room Furniture > Bar Stools", "Bar Stool", "bar stools",
       FURN_ATTRS, {**_C, "size": ["24 inch", "26 inch", "30 inch"]}, (50, 300), "Swivel, Backless, Counter Height"),
    _t("furniture", "Home Décor Products > Rugs, Pads & Protectors > Area Rugs", "Area Rug", "area rug",
       "easy clean, non slip, living room, bedroom, machine washable, stain resistant, soft texture, low pile",
       {**_C, "size": ["2' x 3'", "4' x 6'", "5' x 7'", "8' x 10'"]}, (30, 300), "Boho, Shag, Vintage, Moroccan"),
    _t("furniture", "Bedding > Sheets & Pillowcases > Sheet & Pillowcase Sets", "Sheet Set", "bed sheets",
       "deep pocket, machine washable, wrinkle free, breathable cooling, soft material, easy care, fade resistant",
       {**_C, "size": ["twin", "full", "queen", "king"]}, (20, 120), "Microfiber, Bamboo, Cotton, Flannel"),
    _t("furniture", "Home Décor Products > Window Treatments > Curtains & Drapes > Panels", "Curtains", "curtains",
       "blackout, thermal insulated, living room, bedroom, machine washable, grommet top, noise reducing",
       {**_C, "size": ["52w x 63l", "52w x 84l", "52w x 96l"]}, (15, 80), "Blackout, Sheer, Linen, Velvet"),
    _t("furniture", "Furniture > Entryway Furniture > Shoe Racks", "Shoe Rack", "shoe rack", FURN_ATTRS,
       {"color": ["black", "white", "brown"], "size": ["3 tier", "4 tier", "5 tier"]}, (20, 90),
       "Stackable, Bamboo, Metal, Bench"),
)

USES = {
    "fashion": ["everyday wear", "the gym", "travel", "work", "weekend outings", "outdoor activities"],
    "beauty": ["daily use", "all skin types", "travel", "your self-care routine", "gifting"],
    "electronics": ["home and office", "travel", "gaming", "everyday use", "outdoor use"],
    "food": ["snacking on the go", "family gatherings", "the office pantry", "lunch boxes", "gifting"],
    "furniture": ["small spaces", "apartments", "the home office", "living rooms", "bedrooms"],
}
